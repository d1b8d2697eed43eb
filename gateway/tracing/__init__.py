"""OpenTelemetry traces with the GenAI semantic conventions: optional (the `otel` extra), configured
by the standard OTEL_* environment variables only, and absent when off.

Off (the default), nothing of this package runs per request: the app gets no tracing middleware and
its transports are not wrapped, so the request path is the same code as without the extra. On (see
settings.py for the switch), a SERVER span per client request (server_span.py) and a CLIENT span
per upstream attempt (client_span.py), which carries the attempt's `traceparent` upstream.
"""
