"""Everything that acts on a case: intake, lifecycle actions, visibility and scope, legacy import, photos."""
