"""What runs inside the host program with consent on: recording in memory, identity, notice,
usage and system metrics, and the hand-off of records to the spool."""
