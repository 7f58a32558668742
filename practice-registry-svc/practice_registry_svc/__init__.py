"""practice-registry-svc: practices, PCNs, clinicians, slot-type rules, registered patients, API keys.

Decisions a reader should know (the why is next to the code that carries each one out):
- A practice's PCN must already exist (422 `unknown_pcn`); PCNs are created by an admin. Auto-creating one
  from a practice's `pcn` would turn a typo into a phantom network and share hub capacity with the wrong
  practices.
- One `version` counter per practice runs across every event about it (PracticeCreated/Updated,
  CliniciansReplaced, SlotTypesReplaced); it is monotonic within each event type, which is what consumers compare.
  A change that changes nothing (the same list again, a PATCH to current values) publishes nothing.
- A practice's own key may change its phone, address, opening hours and notes for agents; its name, PCN and
  status are the centre's (admin's). Agents and supervisors read, never change, registry data.
- Patient uploads: each invalid row is reported with its NHS number as sent and a reason; valid rows apply.
  Rows sharing an NHS number are all rejected (we cannot tell which is right). In replace mode a patient whose
  row was rejected but whose NHS number is sound is not removed, and an upload with no valid row that would
  only remove patients is refused (422 `replace_would_empty`).
- Keys of a suspended practice still verify (the practice must read its feed and keep its data current); the
  verify answer carries `practice_status` so callers can decide more.
- Every successful patient lookup is audited; a refused one (4xx) returned nothing and records nothing.
"""
