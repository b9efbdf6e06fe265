"""Word lists the data generator draws names and addresses from."""

from __future__ import annotations

COMPANY_FIRST = ("Blue", "Northern", "Silver", "Granite", "Bright", "Summit", "Harbor", "Crimson",
                 "Evergreen", "Golden", "Iron", "Maple", "Oak", "Pioneer", "Quantum", "River",
                 "Solar", "Stone", "Swift", "Urban", "Vertex", "Willow", "Atlas", "Beacon",
                 "Cedar", "Delta", "Echo", "Falcon", "Horizon", "Lumen")
COMPANY_SECOND = ("Harbor", "Peak", "Field", "Works", "Labs", "Systems", "Logistics", "Foods",
                  "Analytics", "Dynamics", "Health", "Energy", "Media", "Robotics", "Textiles",
                  "Consulting", "Ventures", "Networks", "Partners", "Studios", "Motors",
                  "Pharma", "Security", "Software", "Supply", "Trading", "Designs", "Finance",
                  "Retail", "Foundry")
COMPANY_SUFFIX = ("Inc", "Ltd", "LLC", "GmbH", "SAS", "Pty Ltd", "Corp", "")
TLDS = (".com", ".com", ".io", ".co.uk", ".de", ".fr", ".com.au", ".ca")

# (city, state, zip, country)
LOCATIONS = (
    ("Boston", "MA", "02110", "United States"),
    ("Austin", "TX", "78701", "United States"),
    ("Denver", "CO", "80202", "United States"),
    ("Seattle", "WA", "98101", "United States"),
    ("Chicago", "IL", "60601", "United States"),
    ("London", "", "EC1A 1BB", "United Kingdom"),
    ("Manchester", "", "M1 1AE", "United Kingdom"),
    ("Berlin", "Berlin", "10115", "Germany"),
    ("München", "Bayern", "80331", "Germany"),
    ("Paris", "Île-de-France", "75002", "France"),
    ("Toronto", "ON", "M5H 2N2", "Canada"),
    ("Sydney", "NSW", "2000", "Australia"),
    ("Dublin", "", "D02 X285", "Ireland"),
)
STREETS = ("Main Street", "Market Street", "High Street", "Harbour Road", "Oak Avenue",
           "Station Road", "Park Lane", "King Street", "Elm Drive", "Industrial Way")
ADDRESS2 = ("Suite 200", "Floor 3", "Unit 12", "Building B", "c/o Accounts Payable")

FIRST_NAMES = ("Alice", "Bruno", "Chen", "Dana", "Elif", "Farah", "Gustav", "Hana", "Ivan",
               "Jonas", "Keiko", "Liam", "Maya", "Nadia", "Omar", "Priya", "Quinn", "Rosa",
               "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yusuf", "Zoë")
LAST_NAMES = ("Anders", "Brown", "Costa", "Dubois", "Evans", "Fischer", "García", "Hughes",
              "Ito", "Jensen", "Kowalski", "Lopez", "Müller", "Nakamura", "O'Brien", "Patel",
              "Rossi", "Schmidt", "Tanaka", "Ulrich", "Varga", "Weber", "Young", "Zhang")
OWNERS = ("ava.sales", "ben.accounts", "carla.ae", "dmitri.sdr", "erin.cs")

PRODUCT_ADJECTIVES = ("Premium", "Standard", "Basic", "Enterprise", "Starter", "Advanced",
                      "Annual", "Monthly", "Pro", "Express", "Custom", "Deluxe")
PRODUCT_NOUNS = ("Support Plan", "Implementation Service", "Training Day", "License",
                 "Widget", "Sensor Kit", "Consulting Hour", "Onboarding Package",
                 "Maintenance Contract", "Hardware Bundle", "Data Migration", "Audit",
                 "Cloud Storage (TB)", "API Add-on", "Replacement Part", "Gift Card")
DEAL_WORDS = ("Expansion", "Renewal", "Pilot", "Rollout", "Upgrade", "New logo", "Phase 2",
              "Migration", "Cross-sell", "Framework agreement")
CUSTOM_LINES = ("Custom integration work", "Travel expenses", "Rush delivery fee",
                "Professional services (ad hoc)", "Setup fee")
FRACTIONS = ("0.5", "1.5", "2.25", "0.75", "12.5", "3.333", "0.1")
PERCENTAGES = ("5", "10", "12.5", "15", "20", "25", "33.33")
