"""The PyTorch back end: emit writes the source (text only), build makes the module."""
