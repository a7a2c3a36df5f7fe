"""The pure rule engine: facts, the expression language, rule files and evaluation.

Nothing in this package touches the network, files (except ``loading``, which reads rule
files for ``check``) or the clock: *now* arrives as an argument.
"""
