"""What the daemon is doing, for people: the status model, the board the cycle
publishes to, the page, and the offline view of ``amo-mixer status``."""
