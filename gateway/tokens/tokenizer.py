"""The BPE tokenizer behind the local estimate: OpenAI's o200k_base vocabulary (GPT-4o, GPT-4.1,
GPT-5, the o-series), compiled into the toktok-rs wheel. No data file is read and nothing is
downloaded, so the gateway counts offline.

Loading the vocabulary costs ~0.4 s of CPU (holding the GIL: a thread would not spare the event
loop) and ~30 MB, so it happens on first use, once per process: a gateway whose upstreams all count
tokens themselves never pays it. `load()` pays it up front, e.g. before a worker serves traffic.
"""

from __future__ import annotations

import toktok

ENCODING = "o200k_base"


def load() -> None:
    """Load the vocabulary now (it is cached for the life of the process)."""
    toktok.batch_count([""], ENCODING, threads=1)


def count_texts(texts: list[str]) -> int:
    """The tokens in `texts`, each tokenized on its own (as separate messages are). One call for all
    of a request's texts: a call costs ~25 µs on top of ~5 ns a character. One thread: the gateway
    scales by workers, and a thread pool costs more than it saves on a request's few texts."""
    if not texts:
        return 0
    return int(sum(toktok.batch_count(texts, ENCODING, threads=1)))
