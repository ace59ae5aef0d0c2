package gateway

import "net/http"

// router sends an inference request to the pool routed to its model, and
// everything else to the default pool.
type router struct {
	def     *pool
	byModel map[string]*pool
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(rt.byModel) > 0 {
		if ex := exchangeFrom(r.Context()); ex != nil {
			if p, ok := rt.byModel[ex.req.Model]; ok {
				p.proxy.ServeHTTP(w, r)
				return
			}
		}
	}
	rt.def.proxy.ServeHTTP(w, r)
}
