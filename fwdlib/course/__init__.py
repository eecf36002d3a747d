"""The course's own floor: exercise checks per lesson, teaching figures, flow diagrams."""
