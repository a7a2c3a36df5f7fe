"""The pure rule engine: facts, the expression language, compiled rules and evaluation.

Nothing in this package touches the network, files or the clock: *now* arrives as an
argument, and rule files arrive parsed (``mixer.rulefile``), read by ``mixer.rule_loading``.
"""
