"""The state directory: the run log and its codec, the SQLite index, the locks."""
