from services.profiles.models import metadata
from shared.alembic_env import run

run(metadata)
