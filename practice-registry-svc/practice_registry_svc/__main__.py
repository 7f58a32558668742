from services.serve import main

from practice_registry_svc.settings import Settings

if __name__ == "__main__":
    main("practice_registry_svc", Settings())
