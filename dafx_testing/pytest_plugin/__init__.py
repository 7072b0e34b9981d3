"""The pytest plugin (entry point :mod:`dafx_testing.pytest_plugin.plugin`): fixtures,
options and their ini twins, the ``crash_sweep`` and ``fault_sweep`` markers, goldens, failure
reports, HTML pages.

The only part of the package that imports pytest, and nothing imports it. At start-up it
loads pytest alone; the engine loads inside fixtures and hooks.
"""
