"""The old name of `manage.py send_mail` (the tracking mail is one kind of the outbox now): the same command."""
from .send_mail import Command as SendMail


class Command(SendMail):
    pass
