"""Paper-trading engine for Upbit/Binance arbitrage: Trio actor shells around a pure core."""
