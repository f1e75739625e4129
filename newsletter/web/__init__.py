"""The web app: public pages and tracking routes (track), and the staff dashboard under /admin (report)."""
