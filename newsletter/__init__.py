"""newsletter: multilingual newsletter and mailing-list automation for an NGO information hub.

The pipeline, one package each: feeds -> render -> schedule -> send -> track -> report, around one
store (`newsletter.store`) and the audience (`newsletter.audience`).
"""

__version__ = "0.1.0"
