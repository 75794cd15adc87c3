"""The HTTP server: the FastAPI app (app), request parsing (requests) and micro-batching (microbatch)."""
