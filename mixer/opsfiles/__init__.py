"""The files operators write (config, rules, rule tests, scenarios): one wing for them.

``marked_yaml`` reads YAML keeping the line and column of every key and value;
``problems`` is the one ``Problem`` type with did-you-mean and key-path spelling;
``fields`` holds the field types every file shares (durations, steps, deadlines);
``reading`` reads an operator's file as text, the one place such files are opened.
Nothing here knows the engine; the config, the rule format, rule tests and scenarios
build on it.
"""
