package loadgen

// builtinPrompts are the -prompt-size prompts, with the intents of the
// study tokentrace grew from: a ~10-word answer, three paragraphs, a
// detailed architecture design, a comprehensive system design. Their input
// sizes (docs/loadtest.md lists the token counts) grow with the answer they
// ask for, so a larger size loads both prefill and decode.
var builtinPrompts = map[string]string{
	"small": "In about ten words: what does a load balancer do?",

	"medium": "Write three paragraphs about how a content delivery network makes a web site faster " +
		"for readers around the world. The first paragraph should explain edge caching, the second " +
		"the trade-offs of cache invalidation, and the third when a content delivery network is not " +
		"worth its cost.",

	"large": "You are a senior software architect. Write a detailed architecture design for a URL " +
		"shortening service. Requirements: 100 million new short links per month; reads outnumber " +
		"writes 100 to 1; redirects must take under 20 milliseconds at the 99th percentile; links " +
		"may expire; users can see click statistics per day and per country; the service runs in " +
		"two regions and must survive the loss of one. Cover: the API (create, resolve, statistics), " +
		"how short codes are generated without collisions, the data model and the choice of " +
		"database, caching, how click events are collected and aggregated, replication between the " +
		"regions, capacity estimates with numbers, failure modes and how each is handled, and the " +
		"monitoring you would put in place. Use headings, and justify every choice in a sentence " +
		"or two.",

	"xlarge": "You are the principal engineer of a company that is about to build a global, " +
		"multi-tenant ride-hailing platform. Write a comprehensive system design document. " +
		"Context: the platform launches in 40 cities on four continents within a year; at peak " +
		"it must handle 2 million concurrent riders, 500,000 active drivers sending GPS updates " +
		"every 4 seconds, and 50,000 trip requests per minute. Riders expect a match within 10 " +
		"seconds, prices that are stable for 2 minutes after a quote, and accurate arrival times. " +
		"Drivers are paid weekly and can cash out instantly for a fee. Regulators in several " +
		"countries require that trip data stays in the country, that drivers' working hours are " +
		"capped, and that every trip can be audited for 7 years. The company has 300 engineers in " +
		"30 teams and deploys many times a day.\n\n" +
		"Your document must cover, in this order:\n" +
		"1. Goals, non-goals and the assumptions behind every capacity figure.\n" +
		"2. A high-level architecture with every service, its responsibility, its owner team and " +
		"the protocols between services.\n" +
		"3. The location pipeline: ingestion of GPS updates, geospatial indexing (compare geohash, " +
		"S2 cells and H3), storage of recent and historical positions, and how stale data is aged out.\n" +
		"4. Matching and dispatch: the algorithm, batching windows, fairness to drivers, how " +
		"surge areas are computed, and what happens when a driver declines.\n" +
		"5. Pricing: quotes, surge multipliers, promotions, currency handling and how a quote " +
		"stays stable while supply changes.\n" +
		"6. Trips as a state machine: every state and transition, idempotency of each step, and " +
		"recovery after a crash in any service mid-trip.\n" +
		"7. Payments and payouts: authorisation holds, capture, refunds, the ledger design, " +
		"reconciliation with payment providers and instant cash-out.\n" +
		"8. Data residency: how the design keeps each country's data in that country while " +
		"sharing code, and how cross-border trips are handled.\n" +
		"9. Storage choices for each kind of data with their consistency needs, retention, " +
		"backups and the 7-year audit trail.\n" +
		"10. Reliability: service-level objectives, multi-region failover, load shedding, " +
		"graceful degradation when maps or payments are down, and chaos testing.\n" +
		"11. Observability: metrics, logs and traces, the dashboards each team owns and the " +
		"alerts that page someone at night.\n" +
		"12. Security and privacy: authentication of riders and drivers, fraud detection, " +
		"protection of location data, and the threat model.\n" +
		"13. A rollout plan from a single pilot city to 40 cities, with the risks of each phase.\n" +
		"14. A cost estimate for the first year, broken down by compute, storage, network and " +
		"third-party services, with the three biggest levers to reduce it.\n\n" +
		"Write for an audience of senior engineers, justify every trade-off, include diagrams " +
		"described in text, and end with a list of the open questions you would take to the " +
		"leadership team.",
}
