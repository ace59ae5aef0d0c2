package gateway

import "net/http"

// router sends an inference request to the forwarder of the pool routed
// to its model, and everything else to the default pool's ReverseProxy.
type router struct {
	def     *pool
	byModel map[string]*pool
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := exchangeFrom(r.Context())
	if ex == nil {
		rt.def.proxy.ServeHTTP(w, r)
		return
	}
	p := rt.def
	if q, ok := rt.byModel[ex.req.Model]; ok {
		p = q
	}
	p.stream.ServeHTTP(w, r)
}
