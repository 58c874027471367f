"""The console's screens: one per view (overview, messages, questions, rumours, staff,
journal), the start of an incident, and the dialogs they open."""
