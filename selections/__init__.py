"""Object and event selections: objects (leptons, jets, b-jets), regions, cutflows."""
