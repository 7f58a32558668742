"""practice-registry-svc: practices, PCNs, clinicians, slot-type rules, registered patients, API keys."""
