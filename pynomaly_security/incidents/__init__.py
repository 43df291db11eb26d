"""Incident response (issue 16): incidents and their lifecycle, decisions, playbooks."""
