/**
 * The OpenAPI security schemes the route's security requirement names. A
 * gateway owns its document's components, so it spreads these into its
 * @fastify/swagger options: `components: { securitySchemes: { ...securitySchemes } }`.
 */
export const securitySchemes = {
  activeConversationsAuthHeader: {
    type: 'apiKey',
    in: 'header',
    name: 'auth',
    description: 'The JWT itself in the `auth` header, as on the vendor page.'
  },
  activeConversationsBearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'The JWT in `Authorization: Bearer <token>`.'
  }
} as const

/** Either scheme will do. */
export const securityRequirement = Object.keys(securitySchemes).map((name) => ({ [name]: [] }))
