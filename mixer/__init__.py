"""amo-mixer: keeps QueueMetrics AMO campaigns on track by rules, with a decision trace."""

__version__ = "0.1.0"
