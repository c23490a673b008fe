package demodata

// Vocabularies of the synthetic attendees. Order matters where noted: the
// earlier an entry, the more often it is drawn.

var firstNames = []string{
	"Ada", "Alex", "Amara", "Ana", "Ben", "Carla", "Chen", "Dana", "Daniel", "Diego",
	"Elena", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal",
	"Jana", "Jonas", "Julia", "Kai", "Kenji", "Lea", "Leon", "Lina", "Luca", "Maya",
	"Mei", "Mia", "Nadia", "Noah", "Nora", "Omar", "Olga", "Paul", "Priya", "Rafael",
	"Rosa", "Sam", "Sara", "Sofia", "Tariq", "Theo", "Uma", "Victor", "Yara", "Zoe",
}

var lastNames = []string{
	"Adams", "Ahmed", "Almeida", "Baker", "Becker", "Chen", "Costa", "Dubois", "Eriksen", "Fischer",
	"Garcia", "Gupta", "Hansen", "Hoffmann", "Ito", "Jansen", "Kim", "Kowalski", "Larsen", "Lopez",
	"Martin", "Meyer", "Moreau", "Müller", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Patel",
	"Petrov", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Smith", "Sato", "Tanaka", "Torres",
	"Varga", "Wagner", "Wang", "Weber", "Wilson", "Yamamoto", "Yilmaz", "Zhang", "Zimmermann", "O'Brien",
}

// industry describes one industry: how common it is, its job titles and the
// interest tags its people lean towards.
type industry struct {
	name     string
	weight   int
	titles   []string
	affinity []string
}

var industries = []industry{
	{"Software", 20, []string{"Software Engineer", "Staff Engineer", "Engineering Manager", "CTO", "Product Manager", "DevOps Engineer"},
		[]string{"developer tools", "open source", "DevOps", "cloud computing", "SaaS", "platform engineering", "API design"}},
	{"Fintech", 12, []string{"Product Manager", "Risk Analyst", "Founder", "Head of Payments", "Compliance Lead"},
		[]string{"fintech", "payments", "crypto", "regtech", "blockchain", "insurtech"}},
	{"Healthcare", 9, []string{"Physician", "Clinical Data Scientist", "Health IT Lead", "Founder", "Operations Director"},
		[]string{"healthtech", "digital health", "wearables", "mental health", "privacy"}},
	{"Consulting", 7, []string{"Consultant", "Senior Consultant", "Partner", "Strategy Manager"},
		[]string{"leadership", "future of work", "pricing strategy", "analytics", "remote work"}},
	{"E-commerce", 8, []string{"Growth Lead", "Marketplace Manager", "Founder", "Head of Operations", "Data Analyst"},
		[]string{"e-commerce", "growth marketing", "payments", "supply chain", "analytics", "SEO"}},
	{"Marketing & Advertising", 6, []string{"Marketing Manager", "Brand Strategist", "Content Lead", "Head of Growth"},
		[]string{"growth marketing", "branding", "content creation", "SEO", "creator economy", "analytics"}},
	{"Education", 6, []string{"Teacher", "Learning Designer", "Founder", "Program Director", "Professor"},
		[]string{"edtech", "public speaking", "community building", "social impact"}},
	{"Climate & Energy", 6, []string{"Energy Analyst", "Sustainability Manager", "Founder", "Project Engineer"},
		[]string{"climate tech", "renewable energy", "sustainability", "electric vehicles", "smart cities"}},
	{"Media & Entertainment", 5, []string{"Producer", "Journalist", "Editor", "Community Manager"},
		[]string{"content creation", "creator economy", "music tech", "gaming", "AR/VR"}},
	{"Manufacturing", 5, []string{"Plant Manager", "Automation Engineer", "Supply Chain Manager", "Quality Lead"},
		[]string{"manufacturing", "robotics", "IoT", "3D printing", "supply chain"}},
	{"Biotech", 4, []string{"Research Scientist", "Bioinformatician", "Lab Director", "Founder"},
		[]string{"biotech", "genomics", "data science", "machine learning"}},
	{"Logistics", 4, []string{"Logistics Manager", "Fleet Operations Lead", "Operations Analyst"},
		[]string{"logistics", "supply chain", "mobility", "IoT"}},
	{"Real Estate", 3, []string{"Property Manager", "Investment Analyst", "Broker"},
		[]string{"proptech", "smart cities", "venture capital"}},
	{"Government & Nonprofit", 3, []string{"Policy Advisor", "Program Manager", "Executive Director"},
		[]string{"govtech", "nonprofits", "social impact", "privacy"}},
	{"Gaming", 2, []string{"Game Designer", "Technical Artist", "Studio Producer"},
		[]string{"gaming", "esports", "AR/VR", "community building"}},
}

// titlesAnywhere are drawn regardless of industry now and then.
var titlesAnywhere = []string{"Founder", "CEO", "Investor", "Student", "Freelancer"}

// interestTags is the interest vocabulary, most popular first (Zipf-like draw).
var interestTags = []string{
	"AI", "startups", "machine learning", "generative AI", "product management", "SaaS", "venture capital",
	"leadership", "data science", "climate tech", "fintech", "cloud computing", "UX design", "growth marketing",
	"cybersecurity", "open source", "sustainability", "remote work", "LLMs", "developer tools",
	"healthtech", "angel investing", "e-commerce", "analytics", "community building", "future of work",
	"blockchain", "payments", "DevOps", "mental health", "public speaking", "edtech", "creator economy",
	"robotics", "data engineering", "mobile apps", "diversity & inclusion", "content creation", "branding",
	"social impact", "renewable energy", "digital health", "privacy", "crypto", "Web3", "IoT", "NLP",
	"computer vision", "API design", "platform engineering", "customer success", "sales enablement",
	"pricing strategy", "no-code", "SEO", "big data", "supply chain", "logistics", "electric vehicles",
	"mobility", "smart cities", "AR/VR", "gaming", "esports", "music tech", "biotech", "genomics", "wearables",
	"quantum computing", "semiconductors", "manufacturing", "3D printing", "regtech", "insurtech", "proptech",
	"govtech", "nonprofits", "agritech", "foodtech", "space tech", "B2B sales", "kubernetes",
}

// needTags is the vocabulary of looking_for and offering, most common first.
var needTags = []string{
	"fundraising", "hiring", "mentoring", "partnerships", "customers", "introductions", "co-founder",
	"product feedback", "investors", "advisors", "job opportunities", "technical advice",
	"go-to-market advice", "design feedback", "career advice", "collaborators", "beta testers",
	"sales leads", "engineering talent", "speaking opportunities", "pilot projects", "press coverage",
	"distribution channels", "legal advice", "research collaboration", "data partnerships",
	"open source contributors", "board members", "suppliers", "learning new skills",
}

// bigCompanies employ many attendees each; earlier ones more.
var bigCompanies = []string{"Globex", "Initech", "Hooli", "Umbrella Cloud", "Acme Corp", "Stark Industries"}

// Small company names combine a prefix and a suffix: about a thousand
// names, so in a pool of a few thousand some small companies repeat.
var (
	companyPrefixes = []string{
		"Amber", "Apex", "Atlas", "Aurora", "Beacon", "Blue", "Bright", "Cedar", "Cobalt", "Coral",
		"Delta", "Ember", "Fern", "Granite", "Harbor", "Helix", "Iris", "Juniper", "Kite", "Lumen",
		"Maple", "Nimbus", "North", "Onyx", "Orbit", "Pine", "Quartz", "River", "Sage", "Summit",
		"Tidal", "Vertex", "Willow", "Zenith", "Lark", "Moss", "Nova", "Opal", "Polar", "Rune",
	}
	companySuffixes = []string{
		"Labs", "Systems", "Analytics", "Health", "Energy", "Studio", "Works", "Ventures", "Robotics", "Capital",
		"Logistics", "Learning", "Bio", "Security", "Data", "Media", "Pay", "AI", "Partners", "Cloud",
		"Foods", "Mobility", "Digital", "Games", "Consulting",
	}
)

var hobbies = []string{
	"climbing", "trail running", "chess", "photography", "cooking", "cycling", "jazz piano", "board games",
	"sailing", "pottery", "birdwatching", "salsa dancing",
}
