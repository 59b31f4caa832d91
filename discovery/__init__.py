"""Discovery of new individuals: group the sightings nobody recognised, propose each group as
a new item, and let a person accept, split or reject it (issue 26; docs/discovery.md)."""
