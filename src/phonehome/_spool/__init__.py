"""The spool: record kinds, segment files and per-destination progress, shared by the host
(which writes) and the sender (which reads)."""
