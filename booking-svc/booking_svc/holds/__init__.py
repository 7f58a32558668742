"""Holds: a short reservation of a slot while an agent confirms with the patient. It expires by itself."""
