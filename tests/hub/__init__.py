"""A hub over other camstream boxes (issue 35): peers, relayed once, faults, secrets."""
