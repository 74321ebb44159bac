"""The pure core: books, wire codecs, aggregation, strategy, fills, portfolio, KPIs.

Nothing here imports trio, trio_websocket or loguru, or touches files or sockets (a test checks).
"""
