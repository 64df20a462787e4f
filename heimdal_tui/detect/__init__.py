"""Detection: per-device baselines, detectors that turn deviations into findings, and alerts.

Detectors see a BatchContext (what one batch of traffic did, already resolved to devices) and emit
Findings; the AlertBook folds findings into alerts. Nothing here knows where the traffic came from
(capture, an API gateway's records, honeypot touches), and nothing imports textual.
"""
