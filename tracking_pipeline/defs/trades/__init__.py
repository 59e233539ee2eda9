"""Trade and strategy analytics: routing decisions, trades, strategy metrics, outcomes, calibration, volume scan."""
