"""Follow-up: has each target group been reached, has it understood, does it feel involved? The signed
follow-up links in every message (`/feedback`, `/r`), and the insights pages with their charts."""
