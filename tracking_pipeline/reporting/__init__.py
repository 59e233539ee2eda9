"""HTML performance reports: self-contained pages (inline SVG charts, no scripts) and where they are written."""
