"""The network seam: the only package that imports trio_websocket and h11, and the one place a test (or a
benchmark) swaps the network for an in-memory one.

- ``ws``: WebSocket client and server with our error types (``WsConnectError``, ``WsClosed``).
- ``http``: the HTTP client the feeds use and a small HTTP/1.1 server for the simulator's REST endpoint.
- ``memory``: an in-memory network that carries the same WebSocket and HTTP traffic without sockets.
- ``seam``: which network this task uses (``use_network``).
"""
