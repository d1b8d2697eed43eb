"""The input tokens of an OpenAI chat request, worked out locally: the answer to `count_tokens` for
an upstream that has no counting API of its own. It is an estimate, and says so where it is served.

Text is tokenized with o200k_base (tokenizer.py), and the request's structure is priced the way
OpenAI's cookbook ("How to count tokens with tiktoken") does for GPT-4o, which matches the counts
OpenAI's API reports for its examples:
- each message: 3, plus its role and content, plus its name and 1 more when it has one; 3 more for
  the reply's priming;
- tools: for each function 7 plus `name:description` (a final "." dropped); 3 if it has properties,
  then for each property 3 plus `name:type:description`, and for an enum -3 plus 3 and the value for
  each of its values; 12 after the last function.
Where the cookbook says nothing the gateway's own rule applies: a property's other schema keywords
(nested properties, items, formats) count as their JSON text, and so does a tool that is not a
function; each tool call in an assistant message counts 3 plus its name and arguments; a tool
message counts as a message (its tool_call_id is not counted); a json_schema `response_format`
counts its name and schema as JSON text. Images and documents: images.py and documents.py. Not
counted: reasoning from earlier turns (providers drop it from the prompt), audio, and parameters
that are not prompt (sampling, limits, tool_choice).

For an OpenAI model this is its count, give or take what the cookbook does not cover; for any
other model it is an estimate: other tokenizers cut the same text into more or fewer pieces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway import json_codec
from gateway.tokens.documents import file_tokens
from gateway.tokens.images import image_tokens
from gateway.tokens.tokenizer import count_texts

PER_MESSAGE = 3
PER_NAME = 1
REPLY_PRIMING = 3
PER_TOOL_CALL = 3
FUNCTION_START = 7
PROPERTIES_START = 3
PER_PROPERTY = 3
ENUM_START = -3
PER_ENUM_VALUE = 3
TOOLS_END = 12
_PROPERTY_KEYS = ("type", "description", "enum")  # what `name:type:description` and the enum price


def estimate_input_tokens(request: Mapping[str, Any]) -> int:
    """The input tokens of `request` (messages, tools, response_format), by the rules above."""
    texts: list[str] = []
    fixed = REPLY_PRIMING
    for message in request.get("messages") or ():
        if isinstance(message, Mapping):
            fixed += _message(message, texts)
    tools = request.get("tools")
    if tools:
        fixed += _tools(tools, texts)
    response_format = request.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        texts.append(json_codec.dumps_str(response_format.get("json_schema")))
    return fixed + count_texts(texts)


def _message(message: Mapping[str, Any], texts: list[str]) -> int:
    fixed = PER_MESSAGE
    role = message.get("role")
    if isinstance(role, str):
        texts.append(role)
    name = message.get("name")
    if isinstance(name, str):
        texts.append(name)
        fixed += PER_NAME
    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping):
                fixed += _part(part, texts)
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            fixed += PER_TOOL_CALL
            texts += [str(function.get("name") or ""), str(function.get("arguments") or "")]
    return fixed


def _part(part: Mapping[str, Any], texts: list[str]) -> int:
    kind = part.get("type")
    if kind == "text" or kind == "refusal":
        texts.append(str(part.get(kind) or ""))
        return 0
    if kind == "image_url":
        image = part.get("image_url")
        if isinstance(image, Mapping):
            return image_tokens(str(image.get("url") or ""), image.get("detail"))
        return image_tokens(str(image or ""), None)
    if kind == "file":
        file = part.get("file")
        return file_tokens(file, texts) if isinstance(file, Mapping) else 0
    if kind == "input_audio":
        return 0
    texts.append(json_codec.dumps_str(part))
    return 0


def _tools(tools: Any, texts: list[str]) -> int:
    fixed = 0
    functions = 0
    for tool in tools if isinstance(tools, list) else ():
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping):
            texts.append(json_codec.dumps_str(tool))
            continue
        functions += 1
        fixed += FUNCTION_START
        description = str(function.get("description") or "")
        texts.append(f"{function.get('name') or ''}:{description.removesuffix('.')}")
        parameters = function.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
        if isinstance(properties, Mapping) and properties:
            fixed += PROPERTIES_START
            for key, schema in properties.items():
                fixed += _property(str(key), schema if isinstance(schema, Mapping) else {}, texts)
    return fixed + (TOOLS_END if functions else 0)


def _property(name: str, schema: Mapping[str, Any], texts: list[str]) -> int:
    fixed = PER_PROPERTY
    kind = schema.get("type")
    kind_text = kind if isinstance(kind, str) else json_codec.dumps_str(kind) if kind is not None else ""
    description = str(schema.get("description") or "")
    texts.append(f"{name}:{kind_text}:{description.removesuffix('.')}")
    enum = schema.get("enum")
    if isinstance(enum, list):
        fixed += ENUM_START + PER_ENUM_VALUE * len(enum)
        texts += [value if isinstance(value, str) else json_codec.dumps_str(value) for value in enum]
    rest = {k: v for k, v in schema.items() if k not in _PROPERTY_KEYS}
    if rest:
        texts.append(json_codec.dumps_str(rest))
    return fixed
