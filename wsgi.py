"""WSGI entry point for production servers (gunicorn): the app plus its background jobs.
Run `flask --app app init-db` (and `seed-demo`) once before starting the workers."""
from app import create_app
from scheduler import start_background_jobs
from web.services import services

application = create_app()
start_background_jobs(services(application))
