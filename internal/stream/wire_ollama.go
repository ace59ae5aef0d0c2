package stream

// ollamaWire is Ollama's native API: NDJSON streams, done:true ends them.
var ollamaWire = Wire{
	API:        APIOllama,
	Name:       "ollama",
	Prefix:     "/",
	StreamType: "application/x-ndjson",
	Endpoints: []Endpoint{
		{API: APIOllama, Operation: OpChat, StreamsByDefault: true, Path: "/api/chat", Name: "chat", body: ollamaChatBody},
		{API: APIOllama, Operation: OpTextCompletion, StreamsByDefault: true, Path: "/api/generate", Name: "generate", body: ollamaGenerateBody},
		{API: APIOllama, Operation: OpEmbeddings, Path: "/api/embed", Name: "embed"},
		{API: APIOllama, Operation: OpEmbeddings, Path: "/api/embeddings", Name: "embeddings"},
	},
	reader:    readUnion,
	errorBody: func(e APIError) any { return map[string]string{"error": e.Message} },
}

type ollamaOptions struct {
	NumPredict  int      `json:"num_predict,omitempty"`
	Seed        *int64   `json:"seed,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
}

func (r GenRequest) ollamaOptions() *ollamaOptions {
	if r.MaxTokens == 0 && r.Seed == nil && r.Temperature == nil {
		return nil
	}
	return &ollamaOptions{NumPredict: r.MaxTokens, Seed: r.Seed, Temperature: r.Temperature}
}

func ollamaChatBody(r GenRequest) any {
	return struct {
		Model    string         `json:"model"`
		Messages []Message      `json:"messages"`
		Stream   bool           `json:"stream"`
		Options  *ollamaOptions `json:"options,omitempty"`
	}{r.Model, r.Messages, true, r.ollamaOptions()}
}

func ollamaGenerateBody(r GenRequest) any {
	return struct {
		Model   string         `json:"model"`
		Prompt  string         `json:"prompt"`
		Stream  bool           `json:"stream"`
		Options *ollamaOptions `json:"options,omitempty"`
	}{r.Model, r.Text(), true, r.ollamaOptions()}
}
