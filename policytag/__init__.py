"""policytag: tag sentences of news articles about government demands on social media platforms."""

__version__ = "0.1.0"
