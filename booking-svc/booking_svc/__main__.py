from booking_svc.settings import Settings
from services.serve import main

if __name__ == "__main__":
    main("booking_svc", Settings())
