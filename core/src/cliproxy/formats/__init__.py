"""Wire-format codecs: one per client/upstream dialect, each mapping to and from :mod:`cliproxy.ir`."""
