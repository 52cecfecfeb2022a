"""Grading specs of the course's labs, one module per lab (``<lab_id>.py`` defining ``LAB = Lab(...)``).

These modules hold reference solutions (they serve self-study and the public ``check`` cases). While a submission is
graded this folder is hidden from it where the OS allows (see ``efflab.grading.runner``); an instructor who wants keys
no student has seen passes ``efflab grade --keys DIR`` with private specs of the same form.
"""
