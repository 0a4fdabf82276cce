from services.outreach.models import metadata
from shared.alembic_env import run

run(metadata)
