"""larpo: language-model alignment as retriever optimization (LarPO)."""

__version__ = "0.1.0"
