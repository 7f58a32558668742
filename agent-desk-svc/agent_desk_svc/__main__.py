from services.serve import main

from agent_desk_svc.retention.command import purge_command
from agent_desk_svc.settings import Settings

if __name__ == "__main__":
    main("agent_desk_svc", Settings(), commands={"purge": purge_command})
