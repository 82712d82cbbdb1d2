"""The embedded default: a synthetic Human3.6M-like world the dataset stage renders itself."""
