"""The members' portal at /members/: server-rendered pages for every member (docs/portal.md)."""
