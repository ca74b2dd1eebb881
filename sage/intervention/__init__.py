"""Interventions on SAE features while the model runs: the edits (add / clamp / amplify / calibrate),
generation with and without them, and their measured effect on the next-token distribution.

Below the agent loop, so that its probes, the evaluation and `sage steer` share one implementation.
"""
