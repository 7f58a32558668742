from services.serve import main

from booking_svc.settings import Settings

if __name__ == "__main__":
    main("booking_svc", Settings())
