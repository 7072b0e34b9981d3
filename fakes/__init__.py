"""The outside world that scenarios talk to: fake services with side-effect ledgers."""
